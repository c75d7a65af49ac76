/* grammar.y — the ppl grammar (pure bison, LALR(1) with LAC, no conflicts).
 *
 * Expressions are written as one nonterminal per precedence level rather than
 * with %left declarations because constraint bounds (`real<lower=a+b>`) need
 * the additive level by name: a top-level `>` there closes the constraint.
 *
 * Syntax errors use bison's "detailed" wording ("unexpected ';', expecting
 * ')' or ','"), with a custom reporter (below) that also summarises long
 * lists of expected tokens instead of dropping them: "expecting '}'" at the
 * end of an unfinished block, "expecting an expression" after an operator.
 *
 * A few checks that are syntactic in spirit but awkward to express in the
 * grammar (the left side of an assignment, what may stand alone as a
 * statement, the number of sizes a type takes) are made in the actions; they
 * record a DIAG_SYNTAX error and abort the parse.
 */

%define api.pure full
%define api.prefix {pplyy}
%define api.token.prefix {TK_}
%define parse.error custom
%define parse.lac full
%locations
%expect 0

%param {yyscan_t scanner}
%parse-param {ParseCtx *ctx}

%code requires {
#include <locale.h>
#include <setjmp.h>
#include <stdint.h>

#include "core/diag.h"
#include "core/value.h"
#include "parser/ast.h"

#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif

/* Limits that keep hostile input from exhausting the C stack of the parser or
   of the recursive passes that walk the tree after it. */
#define PARSE_MAX_NESTING 1000 /* open brackets at once */
#define PARSE_MAX_DEPTH 2500   /* depth of the finished tree */

/* State shared by the scanner and the parser during one parse_string call. */
typedef struct ParseCtx {
  const char *file; /* for SrcPos.file */
  Diag *d;
  Ast *result;
  int line, col;    /* position of the next character (1-based) */
  int depth;        /* brackets currently open */
  const char *ident; /* the last identifier read: what an error at an identifier names */
  locale_t cloc;    /* the C locale, for strtod_l */
  jmp_buf fatal;    /* where a flex fatal error unwinds to */
} ParseCtx;

/* Unwinds to parse_string (parse.c) with an internal error. */
void parse_fatal(ParseCtx *ctx, const char *msg) __attribute__((noreturn));
}

%code provides {
int pplyylex(PPLYYSTYPE *lval, PPLYYLTYPE *lloc, yyscan_t scanner);
}

%code {
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppl_config.h"

/* Bison moves a deep parse stack to the heap; the GC must see the AST
   pointers held there, so that memory is uncollectable but scanned. */
#if PPL_USE_GC
#include <gc/gc.h>
#define YYMALLOC GC_MALLOC_UNCOLLECTABLE
#define YYFREE GC_FREE
#else
#define YYMALLOC malloc
#define YYFREE free
#endif

static void pplyyerror(PPLYYLTYPE *loc, yyscan_t scanner, ParseCtx *ctx, const char *msg);

static SrcPos P(ParseCtx *ctx, PPLYYLTYPE loc) {
  SrcPos p = {ctx->file, loc.first_line, loc.first_column};
  return p;
}

#define FAIL(loc, ...)                                                    \
  do {                                                                    \
    diag_error(ctx->d, DIAG_SYNTAX, P(ctx, loc), __VA_ARGS__);            \
    YYABORT;                                                              \
  } while (0)

static Ast *mk(AstKind k, SrcPos pos) { return ast_new(k, pos); }

static Ast *mk_bin(AstOp op, SrcPos pos, Ast *a, Ast *b) {
  Ast *n = ast_new(AST_BINARY, pos);
  n->op = op, n->a = a, n->b = b;
  return n;
}

static Ast *mk_un(AstOp op, SrcPos pos, Ast *a) {
  Ast *n = ast_new(AST_UNARY, pos);
  n->op = op, n->a = a;
  return n;
}

static AstList list1(Ast *a) {
  AstList l = {0, 0, NULL};
  ast_list_push(&l, a);
  return l;
}

static AstList list0(void) {
  AstList l = {0, 0, NULL};
  return l;
}

/* Sizes a type takes inside its brackets: vector[n], matrix[r, c]. */
static int type_nsizes(AstTypeBase b) {
  switch (b) {
  case TB_VOID: case TB_INT: case TB_REAL: case TB_BOOL: case TB_STRING: return 0;
  case TB_MATRIX: return 2;
  default: return 1;
  }
}

/* Attach the sizes written in brackets; returns an error message or NULL. */
static const char *type_set_sizes(AstType *t, AstList *sizes) {
  int want = type_nsizes(t->base);
  const char *name = ast_type_base_name(t->base);
  if (want == 0)
    return gc_printf("'%s' takes no size; an array is written %s x[n] or array[n] %s x",
                     name, name, name);
  if (sizes->n != want)
    return gc_printf("'%s' takes %s, got %d", name, want == 1 ? "one size" : "two sizes",
                     sizes->n);
  t->size1 = sizes->items[0];
  if (want == 2) t->size2 = sizes->items[1];
  return NULL;
}

/* A declaration without initialiser needs every size; returns a message or NULL. */
static const char *type_check_sizes(const AstType *t) {
  const char *name = ast_type_base_name(t->base);
  int want = type_nsizes(t->base);
  if (want == 1 && !t->size1) return gc_printf("'%s' needs a size: %s[n]", name, name);
  if (want == 2 && !t->size1) return gc_printf("'%s' needs two sizes: %s[rows, cols]", name, name);
  for (int i = 0; i < t->ndims; i++)
    if (!t->dims[i]) return "array sizes may be left out only when the declaration has an initialiser";
  return NULL;
}

static AstList null_list(int n) {
  AstList l = {0, 0, NULL};
  for (int i = 0; i < n; i++) ast_list_push(&l, NULL);
  return l;
}

static void type_set_dims(AstType *t, AstList *dims) {
  t->ndims = dims->n;
  t->dims = dims->items;
}

/* real[,] / array[,] real in signatures: ndims NULL entries. */
static void type_set_sig_dims(AstType *t, int n) {
  t->ndims = n;
  t->dims = gc_alloc(sizeof(Ast *) * (size_t)n);
}

/* Functions whose first argument is an outcome, which Stan separates with '|'. */
static bool is_density_fn(const char *name) {
  static const char *const suffix[] = {"_lpdf", "_lpmf", "_lupdf", "_lupmf", "_lcdf", "_lccdf",
                                       "_cdf", NULL};
  size_t n = strlen(name);
  for (int i = 0; suffix[i]; i++) {
    size_t k = strlen(suffix[i]);
    if (n > k && strcmp(name + n - k, suffix[i]) == 0) return true;
  }
  return false;
}

/* An lvalue is a variable, possibly indexed (several times). */
static bool is_lvalue(const Ast *e) {
  while (e->kind == AST_INDEX) e = e->a;
  return e->kind == AST_VAR;
}
}

%union {
  Ast *node;
  AstType *type;
  AstList list;
  int64_t ival;
  double rval;
  char *sval;
  int n;
  AstOp op;
  AstTypeBase base;
}

%token YYEOF 0 "end of input"
%token <sval> IDENT "identifier"
%token <ival> INT_LIT "integer"
%token <rval> REAL_LIT "real number"
%token <sval> STRING_LIT "string"

%token DATA "'data'" MODEL "'model'" GENERATED "'generated'" QUANTITIES "'quantities'"
%token FUNCTIONS "'functions'" GUIDE "'guide'" PLATE "'plate'"
%token INT "'int'" REAL "'real'" BOOL "'bool'" STRING "'string'" VECTOR "'vector'"
%token ROW_VECTOR "'row_vector'" MATRIX "'matrix'" SIMPLEX "'simplex'" ORDERED "'ordered'"
%token POSITIVE_ORDERED "'positive_ordered'" UNIT_VECTOR "'unit_vector'"
%token CHOLESKY_FACTOR_CORR "'cholesky_factor_corr'" COV_MATRIX "'cov_matrix'"
%token CORR_MATRIX "'corr_matrix'" CHOLESKY_FACTOR_COV "'cholesky_factor_cov'"
%token ARRAY "'array'" VOID "'void'"
%token IF "'if'" ELSE "'else'" FOR "'for'" IN "'in'" WHILE "'while'" BREAK "'break'"
%token CONTINUE "'continue'" RETURN "'return'" TRUE "'true'" FALSE "'false'"
%token TARGET "'target'" PARAM "'param'"

%token LE "'<='" GE "'>='" EQ "'=='" NE "'!='" AND "'&&'" OR "'||'"
%token PLUS_ASSIGN "'+='" MINUS_ASSIGN "'-='" TIMES_ASSIGN "'*='" DIVIDE_ASSIGN "'/='"
%token EMUL_ASSIGN "'.*='" EDIV_ASSIGN "'./='"
%token EMUL "'.*'" EDIV "'./'" IDIV "'%/%'"

/* if-else: `else` binds to the nearest `if` */
%precedence THEN
%precedence ELSE

%type <node> top_item fundef param block_body stmt decl decl_tail
%type <node> expr or_expr and_expr eq_expr rel_expr add_expr mul_expr unary pow_expr
%type <node> postfix primary index
%type <list> top_items fundefs params params_opt stmt_list exprs args_opt args indices
%type <node> arg
%type <list> old_dims_opt
%type <type> decl_type sized_type sig_type ret_type constraint_opt bounds bound
%type <base> base_kw
%type <n> commas
%type <op> assign_op

%%

program:
    top_items {
      Ast *p = mk(AST_PROGRAM, (SrcPos){ctx->file, 1, 1});
      p->list = $1;
      ctx->result = p;
    }
  ;

top_items:
    %empty { $$ = list0(); }
  | top_items top_item {
      $$ = $1;
      if ($2) ast_list_push(&$$, $2);
    }
  | top_items FUNCTIONS '{' fundefs '}' {
      $$ = $1;
      for (int i = 0; i < $4.n; i++) ast_list_push(&$$, $4.items[i]);
    }
  ;

top_item:
    fundef
  | DATA block_body { $$ = $2; $$->kind = AST_BLOCK; $$->name = "data"; $$->pos = P(ctx, @1); }
  | MODEL block_body { $$ = $2; $$->kind = AST_BLOCK; $$->name = "model"; $$->pos = P(ctx, @1); }
  | GUIDE block_body { $$ = $2; $$->kind = AST_BLOCK; $$->name = "guide"; $$->pos = P(ctx, @1); }
  | GENERATED block_body {
      $$ = $2; $$->kind = AST_BLOCK; $$->name = "generated"; $$->pos = P(ctx, @1);
    }
  | GENERATED QUANTITIES block_body {
      $$ = $3; $$->kind = AST_BLOCK; $$->name = "generated"; $$->pos = P(ctx, @1);
    }
  ;

fundefs:
    %empty { $$ = list0(); }
  | fundefs fundef { $$ = $1; ast_list_push(&$$, $2); }
  ;

fundef:
    ret_type IDENT '(' params_opt ')' block_body {
      $$ = mk(AST_FUNCDEF, P(ctx, @2));
      $$->name = $2;
      $$->type = $1;
      $$->list = $4;
      $$->a = $6;
    }
  ;

ret_type:
    VOID { $$ = ast_type_new(TB_VOID, P(ctx, @1)); }
  | sig_type
  ;

params_opt:
    %empty { $$ = list0(); }
  | params
  ;

params:
    param { $$ = list1($1); }
  | params ',' param { $$ = $1; ast_list_push(&$$, $3); }
  ;

param:
    sig_type IDENT {
      $$ = mk(AST_PARAM, P(ctx, @2));
      $$->name = $2;
      $$->type = $1;
    }
  ;

/* A type in a signature: no sizes, no bounds, array dimensions as commas. */
sig_type:
    base_kw { $$ = ast_type_new($1, P(ctx, @1)); }
  | base_kw '[' commas ']' {
      $$ = ast_type_new($1, P(ctx, @1));
      type_set_sig_dims($$, $3);
    }
  | ARRAY '[' commas ']' base_kw {
      $$ = ast_type_new($5, P(ctx, @1));
      type_set_sig_dims($$, $3);
    }
  ;

commas:
    %empty { $$ = 1; }
  | commas ',' { $$ = $1 + 1; }
  ;

base_kw:
    INT { $$ = TB_INT; }
  | REAL { $$ = TB_REAL; }
  | BOOL { $$ = TB_BOOL; }
  | STRING { $$ = TB_STRING; }
  | VECTOR { $$ = TB_VECTOR; }
  | ROW_VECTOR { $$ = TB_ROWVEC; }
  | MATRIX { $$ = TB_MATRIX; }
  | SIMPLEX { $$ = TB_SIMPLEX; }
  | ORDERED { $$ = TB_ORDERED; }
  | POSITIVE_ORDERED { $$ = TB_POS_ORDERED; }
  | UNIT_VECTOR { $$ = TB_UNIT_VECTOR; }
  | CHOLESKY_FACTOR_CORR { $$ = TB_CHOL_CORR; }
  | COV_MATRIX { $$ = TB_COV; }
  | CORR_MATRIX { $$ = TB_CORR; }
  | CHOLESKY_FACTOR_COV { $$ = TB_CHOL_COV; }
  ;

/* ---- statements ---- */

/* Non-empty statement list: `{` followed by an expression could also start an
   array literal, so an empty list must never need reducing after `{`. */
block_body:
    '{' '}' { $$ = mk(AST_STMTS, P(ctx, @1)); }
  | '{' stmt_list '}' { $$ = mk(AST_STMTS, P(ctx, @1)); $$->list = $2; }
  ;

stmt_list:
    stmt { $$ = list1($1); }
  | stmt_list stmt { $$ = $1; ast_list_push(&$$, $2); }
  ;

stmt:
    decl
  | PARAM decl { $$ = $2; $$->is_param = true; }
  | PARAM IDENT IDENT decl_tail { /* `network`, `flow` are words only here, not keywords */
      bool flow = strcmp($2, "flow") == 0;
      if (strcmp($2, "network") != 0 && !flow)
        FAIL(@2, "unknown type '%s' for param '%s' (real, vector, row_vector, matrix, network "
             "or flow)", $2, $3);
      $$ = $4;
      $$->pos = P(ctx, @3);
      $$->name = $3;
      $$->type = ast_type_new(flow ? TB_FLOW : TB_NETWORK, P(ctx, @2));
      $$->is_param = true;
    }
  | block_body
  | ';' { $$ = mk(AST_STMTS, P(ctx, @1)); }
  | expr ';' {
      if ($1->kind != AST_CALL) FAIL(@1, "expression statement must be a function call");
      $$ = mk(AST_EXPRSTMT, P(ctx, @1));
      $$->a = $1;
    }
  | expr assign_op expr ';' {
      if (!is_lvalue($1))
        FAIL(@1, "left side of '%s' must be a variable, optionally indexed", ast_op_name($2));
      $$ = mk(AST_ASSIGN, P(ctx, @1));
      $$->op = $2, $$->a = $1, $$->b = $3;
    }
  | expr '~' IDENT '(' args_opt ')' ';' {
      Ast *call = mk(AST_CALL, P(ctx, @3));
      call->name = $3, call->list = $5;
      $$ = mk(AST_TILDE, P(ctx, @1));
      $$->a = $1, $$->b = call;
    }
  | TARGET PLUS_ASSIGN expr ';' { $$ = mk(AST_TARGET, P(ctx, @1)); $$->a = $3; }
  | IF '(' expr ')' stmt %prec THEN {
      $$ = mk(AST_IF, P(ctx, @1));
      $$->a = $3, $$->b = $5;
    }
  | IF '(' expr ')' stmt ELSE stmt {
      $$ = mk(AST_IF, P(ctx, @1));
      $$->a = $3, $$->b = $5, $$->c = $7;
    }
  | FOR '(' IDENT IN expr ':' expr ')' stmt {
      $$ = mk(AST_FOR, P(ctx, @1));
      $$->name = $3, $$->a = $5, $$->b = $7, $$->c = $9;
    }
  | FOR '(' IDENT IN expr ')' stmt {
      $$ = mk(AST_FOR, P(ctx, @1));
      $$->name = $3, $$->a = $5, $$->c = $7;
    }
  | PLATE '(' IDENT IN expr ':' expr ')' stmt {
      $$ = mk(AST_FOR, P(ctx, @1));
      $$->name = $3, $$->a = $5, $$->b = $7, $$->c = $9;
      $$->sval = "plate";
    }
  | PLATE '(' IDENT IN expr ':' expr ',' IDENT '=' expr ')' stmt {
      if (strcmp($9, "batch") != 0) FAIL(@9, "a plate takes one option, 'batch = B', not '%s'", $9);
      $$ = mk(AST_FOR, P(ctx, @1));
      $$->name = $3, $$->a = $5, $$->b = $7, $$->c = $13;
      $$->sval = "plate";
      ast_list_push(&$$->list, $11);
    }
  | WHILE '(' expr ')' stmt {
      $$ = mk(AST_WHILE, P(ctx, @1));
      $$->a = $3, $$->b = $5;
    }
  | BREAK ';' { $$ = mk(AST_BREAK, P(ctx, @1)); }
  | CONTINUE ';' { $$ = mk(AST_CONTINUE, P(ctx, @1)); }
  | RETURN ';' { $$ = mk(AST_RETURN, P(ctx, @1)); }
  | RETURN expr ';' { $$ = mk(AST_RETURN, P(ctx, @1)); $$->a = $2; }
  ;

assign_op:
    '=' { $$ = AOP_ASSIGN; }
  | PLUS_ASSIGN { $$ = AOP_ADD; }
  | MINUS_ASSIGN { $$ = AOP_SUB; }
  | TIMES_ASSIGN { $$ = AOP_MUL; }
  | DIVIDE_ASSIGN { $$ = AOP_DIV; }
  | EMUL_ASSIGN { $$ = AOP_EMUL; }
  | EDIV_ASSIGN { $$ = AOP_EDIV; }
  ;

/* T x;  T x = e;  T x ~ d(...);  with dimensions after the name or array[...].
   Sizes and dimensions may be left out (vector v = e; real x[] = e;) only
   when an initialiser gives the value. */
decl:
    decl_type IDENT old_dims_opt decl_tail {
      if ($3.n > 0 && $1->ndims > 0)
        FAIL(@3, "array dimensions given twice: use either array[...] or dimensions "
                 "after the name");
      if ($3.n > 0) type_set_dims($1, &$3);
      if (!$4->a) {
        const char *err = type_check_sizes($1);
        if (err) FAIL(@1, "%s", err);
      }
      $$ = $4;
      $$->pos = P(ctx, @2);
      $$->name = $2;
      $$->type = $1;
    }
  ;

old_dims_opt:
    %empty { $$ = list0(); }
  | '[' exprs ']' { $$ = $2; }
  | '[' commas ']' { $$ = null_list($2); }
  ;

decl_tail:
    ';' { $$ = mk(AST_DECL, P(ctx, @1)); }
  | '=' expr ';' { $$ = mk(AST_DECL, P(ctx, @1)); $$->a = $2; }
  | '~' IDENT '(' args_opt ')' ';' {
      Ast *call = mk(AST_CALL, P(ctx, @2));
      call->name = $2, call->list = $4;
      $$ = mk(AST_DECL, P(ctx, @1));
      $$->b = call;
    }
  ;

decl_type:
    sized_type
  | ARRAY '[' exprs ']' sized_type { $$ = $5; $$->pos = P(ctx, @1); type_set_dims($$, &$3); }
  | ARRAY '[' commas ']' sized_type {
      $$ = $5;
      $$->pos = P(ctx, @1);
      type_set_sig_dims($$, $3);
    }
  ;

sized_type:
    base_kw constraint_opt {
      $$ = $2 ? $2 : ast_type_new($1, P(ctx, @1));
      $$->base = $1, $$->pos = P(ctx, @1);
    }
  | base_kw constraint_opt '[' exprs ']' {
      $$ = $2 ? $2 : ast_type_new($1, P(ctx, @1));
      $$->base = $1, $$->pos = P(ctx, @1);
      const char *err = type_set_sizes($$, &$4);
      if (err) FAIL(@3, "%s", err);
    }
  ;

constraint_opt:
    %empty { $$ = NULL; }
  | '<' bounds '>' { $$ = $2; }
  ;

bounds:
    bound
  | bound ',' bound {
      $$ = $1;
      if (($1->lower && $3->lower) || ($1->upper && $3->upper))
        FAIL(@3, "duplicate '%s' bound", $3->lower ? "lower" : "upper");
      if ($3->lower) $$->lower = $3->lower;
      if ($3->upper) $$->upper = $3->upper;
    }
  ;

bound:
    IDENT '=' add_expr {
      $$ = ast_type_new(TB_REAL, P(ctx, @1));
      if (strcmp($1, "lower") == 0) $$->lower = $3;
      else if (strcmp($1, "upper") == 0) $$->upper = $3;
      else FAIL(@1, "expected 'lower' or 'upper', got '%s'", $1);
    }
  ;

/* ---- expressions, lowest precedence first ---- */

expr:
    or_expr
  | or_expr '?' expr ':' expr {
      $$ = mk(AST_TERNARY, P(ctx, @2));
      $$->a = $1, $$->b = $3, $$->c = $5;
    }
  ;

or_expr:
    and_expr
  | or_expr OR and_expr { $$ = mk_bin(AOP_OR, P(ctx, @2), $1, $3); }
  ;

and_expr:
    eq_expr
  | and_expr AND eq_expr { $$ = mk_bin(AOP_AND, P(ctx, @2), $1, $3); }
  ;

eq_expr:
    rel_expr
  | eq_expr EQ rel_expr { $$ = mk_bin(AOP_EQ, P(ctx, @2), $1, $3); }
  | eq_expr NE rel_expr { $$ = mk_bin(AOP_NE, P(ctx, @2), $1, $3); }
  ;

rel_expr:
    add_expr
  | rel_expr '<' add_expr { $$ = mk_bin(AOP_LT, P(ctx, @2), $1, $3); }
  | rel_expr LE add_expr { $$ = mk_bin(AOP_LE, P(ctx, @2), $1, $3); }
  | rel_expr '>' add_expr { $$ = mk_bin(AOP_GT, P(ctx, @2), $1, $3); }
  | rel_expr GE add_expr { $$ = mk_bin(AOP_GE, P(ctx, @2), $1, $3); }
  ;

add_expr:
    mul_expr
  | add_expr '+' mul_expr { $$ = mk_bin(AOP_ADD, P(ctx, @2), $1, $3); }
  | add_expr '-' mul_expr { $$ = mk_bin(AOP_SUB, P(ctx, @2), $1, $3); }
  ;

mul_expr:
    unary
  | mul_expr '*' unary { $$ = mk_bin(AOP_MUL, P(ctx, @2), $1, $3); }
  | mul_expr '/' unary { $$ = mk_bin(AOP_DIV, P(ctx, @2), $1, $3); }
  | mul_expr '%' unary { $$ = mk_bin(AOP_MOD, P(ctx, @2), $1, $3); }
  | mul_expr EMUL unary { $$ = mk_bin(AOP_EMUL, P(ctx, @2), $1, $3); }
  | mul_expr EDIV unary { $$ = mk_bin(AOP_EDIV, P(ctx, @2), $1, $3); }
  | mul_expr IDIV unary { $$ = mk_bin(AOP_IDIV, P(ctx, @2), $1, $3); }
  ;

/* -2^2 is -(2^2): `^` binds tighter than prefix operators, and its exponent
   may carry its own sign (2^-1). */
unary:
    pow_expr
  | '-' unary { $$ = mk_un(AOP_NEG, P(ctx, @1), $2); }
  | '!' unary { $$ = mk_un(AOP_NOT, P(ctx, @1), $2); }
  | '+' unary { $$ = mk_un(AOP_PLUS, P(ctx, @1), $2); }
  ;

pow_expr:
    postfix
  | postfix '^' unary { $$ = mk_bin(AOP_POW, P(ctx, @2), $1, $3); }
  ;

postfix:
    primary
  | postfix '[' indices ']' {
      $$ = mk(AST_INDEX, P(ctx, @1));
      $$->a = $1, $$->list = $3;
    }
  | postfix '\'' { $$ = mk_un(AOP_TRANSPOSE, P(ctx, @2), $1); }
  ;

indices:
    index { $$ = list1($1); }
  | indices ',' index { $$ = $1; ast_list_push(&$$, $3); }
  ;

index:
    expr
  | expr ':' expr { $$ = mk(AST_SLICE, P(ctx, @1)); $$->a = $1, $$->b = $3; }
  | expr ':' { $$ = mk(AST_SLICE, P(ctx, @1)); $$->a = $1; }
  | ':' expr { $$ = mk(AST_SLICE, P(ctx, @1)); $$->b = $2; }
  | ':' { $$ = mk(AST_SLICE, P(ctx, @1)); }
  ;

primary:
    INT_LIT { $$ = mk(AST_INT, P(ctx, @1)); $$->ival = $1; }
  | REAL_LIT { $$ = mk(AST_REAL, P(ctx, @1)); $$->rval = $1; }
  | STRING_LIT { $$ = mk(AST_STRING, P(ctx, @1)); $$->sval = $1; }
  | TRUE { $$ = mk(AST_BOOL, P(ctx, @1)); $$->ival = 1; }
  | FALSE { $$ = mk(AST_BOOL, P(ctx, @1)); $$->ival = 0; }
  | IDENT { $$ = mk(AST_VAR, P(ctx, @1)); $$->name = $1; }
  | IDENT '(' args_opt ')' {
      $$ = mk(AST_CALL, P(ctx, @1));
      $$->name = $1, $$->list = $3;
    }
  /* Stan's normal_lpdf(y | mu, sigma): the same call as normal_lpdf(y, mu, sigma) */
  | IDENT '(' expr '|' args_opt ')' {
      if (!is_density_fn($1))
        FAIL(@4, "'|' separates the outcome from the parameters only in the calls of "
                 "_lpdf, _lpmf, _lcdf, _lccdf and _cdf functions; '%s' takes ',' there", $1);
      $$ = mk(AST_CALL, P(ctx, @1));
      $$->name = $1, $$->list = list1($3);
      for (int i = 0; i < $5.n; i++) ast_list_push(&$$->list, $5.items[i]);
    }
  | '(' expr ')' { $$ = $2; }
  | '{' exprs '}' { $$ = mk(AST_ARRAY, P(ctx, @1)); $$->list = $2; }
  | '[' exprs ']' { $$ = mk(AST_ROWVEC, P(ctx, @1)); $$->list = $2; }
  ;

args_opt:
    %empty { $$ = list0(); }
  | args
  ;

/* A call's arguments: positional, then named (`stop = "\n"`); the checker
   maps names to positions and says where one is out of place. */
args:
    arg { $$ = list1($1); }
  | args ',' arg { $$ = $1; ast_list_push(&$$, $3); }
  ;

arg:
    expr
  | IDENT '=' expr {
      $$ = mk(AST_NAMED, P(ctx, @1));
      $$->name = $1, $$->a = $3;
    }
  /* lm(prompt, model = "NAME"): the block keyword as a parameter's name */
  | MODEL '=' expr {
      $$ = mk(AST_NAMED, P(ctx, @1));
      $$->name = "model", $$->a = $3;
    }
  ;

exprs:
    expr { $$ = list1($1); }
  | exprs ',' expr { $$ = $1; ast_list_push(&$$, $3); }
  ;

%%

/* ---- error messages ---- */

static bool name_in(const char *name, const char *const *set) {
  for (; *set; set++)
    if (strcmp(name, *set) == 0) return true;
  return false;
}

/* Tokens that can start an expression, that can follow one (operators), and
   that start a statement: a long list of these is summarised in words. */
static const char *const expr_start[] = {
    "identifier", "integer", "real number", "string", "'true'", "'false'", "'('", "'{'", "'['",
    "'-'", "'!'", "'+'", NULL};
static const char *const operators[] = {
    "'+'", "'-'", "'*'", "'/'", "'%'", "'^'", "'.*'", "'./'", "'%/%'", "'<'", "'<='", "'>'",
    "'>='", "'=='", "'!='", "'&&'", "'||'", "'?'", "'['", "'\\''", "'='", "'+='", "'-='",
    "'*='", "'/='", "'.*='", "'./='", "'~'", NULL};
static const char *const stmt_start[] = {
    "'int'", "'real'", "'bool'", "'string'", "'vector'", "'row_vector'", "'matrix'",
    "'simplex'", "'ordered'", "'positive_ordered'", "'unit_vector'", "'cholesky_factor_corr'",
    "'cov_matrix'", "'corr_matrix'", "'cholesky_factor_cov'", "'array'", "'if'", "'for'", "'while'", "'break'", "'continue'",
    "'return'", "'target'", "'param'", "'plate'", NULL};

static void msg_add(char *buf, size_t cap, const char *s) {
  size_t n = strlen(buf);
  snprintf(buf + n, cap - n, "%s", s);
}

/* Where a block is expected, Stan's other blocks get the ppl way as a hint. */
static void stan_block_hint(ParseCtx *ctx, SrcPos pos, const char *word) {
  if (strcmp(word, "parameters") == 0)
    diag_hint(ctx->d, pos, "ppl declares latents where they are drawn: `real mu ~ normal(0, 1);` "
                           "in the model block (no parameters block)");
  else if (strcmp(word, "transformed") == 0)
    diag_hint(ctx->d, pos, "ppl has no transformed blocks: compute transformed data in the data "
                           "block after the data it uses (`real m = mean(y);`), transformed "
                           "parameters in the model block after the latents they use "
                           "(`vector[J] theta = mu + tau * eta;`, reported with every draw)");
}

static int yyreport_syntax_error(const yypcontext_t *pc, yyscan_t scanner, ParseCtx *ctx) {
  (void)scanner;
  char msg[512] = "";
  yysymbol_kind_t tok = yypcontext_token(pc);
  if (tok == YYSYMBOL_YYEMPTY) {
    diag_error(ctx->d, DIAG_SYNTAX, P(ctx, *yypcontext_location(pc)), "syntax error");
    return 0;
  }
  msg_add(msg, sizeof msg, "unexpected ");
  msg_add(msg, sizeof msg, yysymbol_name(tok));

  yysymbol_kind_t exp[YYNTOKENS];
  int n = yypcontext_expected_tokens(pc, exp, YYNTOKENS);
  if (n < 0) return n; /* YYENOMEM */
  const char *keep[YYNTOKENS];
  int nkeep = 0;
  const char *phrase = NULL;
  bool has_block_word = false;
  if (n <= 4) {
    for (int i = 0; i < n; i++) keep[nkeep++] = yysymbol_name(exp[i]);
  } else {
    bool has_stmt = false, has_type = false, has_expr = false, has_op = false;
    bool has_block = false, has_lt = false;
    for (int i = 0; i < n; i++) {
      const char *name = yysymbol_name(exp[i]);
      has_stmt |= strcmp(name, "'if'") == 0;
      has_type |= strcmp(name, "'real'") == 0;
      has_expr |= strcmp(name, "identifier") == 0;
      has_op |= strcmp(name, "'*'") == 0;
      has_block |= strcmp(name, "'model'") == 0;
      has_lt |= strcmp(name, "'<'") == 0;
    }
    for (int i = 0; i < n; i++) {
      const char *name = yysymbol_name(exp[i]);
      /* '>' without '<' is the end of a constraint, not a comparison */
      bool closes_bounds = strcmp(name, "'>'") == 0 && !has_lt;
      if (!closes_bounds &&
          (name_in(name, expr_start) || name_in(name, operators) || name_in(name, stmt_start)))
        continue;
      if (has_stmt && (strcmp(name, "';'") == 0 || strcmp(name, "'{'") == 0)) continue;
      keep[nkeep++] = name;
    }
    if (has_block) {
      has_block_word = true;
      nkeep = 0;
      phrase = "a block (data, model, guide, generated) or a function definition";
    } else if (nkeep == 0 && has_stmt) {
      phrase = "a statement";
    } else if (has_type && !has_stmt) {
      phrase = "a type";
    } else if (has_expr && !has_op && !has_stmt) {
      phrase = "an expression";
    }
    if (nkeep > 4) nkeep = 0, phrase = NULL;
  }
  for (int i = 0; i < nkeep; i++) {
    msg_add(msg, sizeof msg, i == 0 ? ", expecting " : " or ");
    msg_add(msg, sizeof msg, keep[i]);
  }
  if (phrase) {
    msg_add(msg, sizeof msg, nkeep == 0 ? ", expecting " : " or ");
    msg_add(msg, sizeof msg, phrase);
  }
  diag_error(ctx->d, DIAG_SYNTAX, P(ctx, *yypcontext_location(pc)), "%s", msg);
  if (has_block_word && tok == YYSYMBOL_IDENT && ctx->ident)
    stan_block_hint(ctx, P(ctx, *yypcontext_location(pc)), ctx->ident);
  return 0;
}

/* Only "memory exhausted" arrives here (syntax errors go through the reporter
   above): the parser stack hit YYMAXDEPTH. */
static void pplyyerror(PPLYYLTYPE *loc, yyscan_t scanner, ParseCtx *ctx, const char *msg) {
  (void)scanner;
  if (strcmp(msg, "memory exhausted") == 0) msg = "program nested too deeply";
  diag_error(ctx->d, DIAG_SYNTAX, P(ctx, *loc), "%s", msg);
}
