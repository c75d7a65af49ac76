/* value.h — runtime values of the interpreter and the memory they live in.
 *
 * Every runtime object (strings, arrays, vectors, matrices, traces) is allocated
 * with gc_alloc / gc_alloc_atomic, which is the Boehm GC heap in normal builds and
 * plain calloc when the project is configured with -Dgc=false (for ASan/UBSan and
 * valgrind runs, where leaks are tolerated).  Nothing allocated here is ever freed
 * by hand.
 *
 * A Value is a small tagged union passed by value.  Containers are immutable from
 * the point of view of sharing: code that mutates a container in place (indexed
 * assignment) must own it, which the interpreter guarantees by copying on
 * assignment (val_copy) — see ir/interp.c.
 */
#ifndef PPL_VALUE_H
#define PPL_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- memory ------------------------------------------------------------- */

void *gc_alloc(size_t n);        /* zeroed, may hold pointers */
void *gc_alloc_atomic(size_t n); /* zeroed, holds no pointers (numbers, chars) */
char *gc_strdup(const char *s);
/* A GC array (pointers allowed) holding n elements of elem bytes, with room
 * for one more: a, or a copy twice as big (at least 8) when n == *cap. */
void *gc_grow(void *a, int n, int *cap, size_t elem);
char *gc_strndup(const char *s, size_t n);
char *gc_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The whole file as a NUL-terminated GC string (*len bytes before the NUL);
 * NULL with *errnum set to the errno value when it cannot be read. */
char *gc_read_file(const char *path, size_t *len, int *errnum);
/* Call once per process before any allocation (idempotent, thread-safe). */
void gc_init(void);
/* Make sure the calling thread may allocate: registers it with the collector on
 * first use and unregisters it when the thread exits. The public API calls it on
 * entry, so hosts can use libppl from threads the GC has never seen. */
void gc_ensure_thread(void);
/* Blocks owned by a host-visible handle (ppl_model, ppl_result ...): scanned by
 * the collector for pointers but never collected; freed with gc_free_root. */
void *gc_alloc_root(size_t n);
void gc_free_root(void *p);
/* Threads other than the main one that allocate must register (no-op without GC). */
void gc_thread_enter(void);
void gc_thread_leave(void);
/* Bracket a training loop (svi, npe): fewer collections for a larger heap
 * (about twice the live data instead of 1.33 times) while any such loop
 * runs; no-op without GC. */
void gc_throughput_begin(void);
void gc_throughput_end(void);

/* Out of memory.  An allocation that fails cannot be reported through a Diag
 * at each of its thousands of call sites, and the library must not abort its
 * host; so, as in Lua, the failure unwinds: every entry point of the API and
 * every worker thread brackets its work with a guard, and a failed allocation
 * jumps back to the innermost guard of its thread, which reports "out of
 * memory" as an ordinary error.  Objects made in between are garbage.  With no
 * guard in force (internal tools, tests of single modules) the process still
 * stops with a message, the only place ppl aborts.
 *
 *     GcGuard g;
 *     if (gc_guard_enter(&g, setjmp(g.jb))) { ...work...; gc_guard_leave(&g); }
 *     else { report g.bytes; }   (the guard is already left)
 */
#include <setjmp.h>
typedef struct GcGuard {
  jmp_buf jb;
  struct GcGuard *prev;
  size_t bytes; /* after a failure: the size of the allocation that failed */
} GcGuard;
/* setjmp_result is setjmp(g->jb)'s: 0 pushes g and returns true (go on); non-zero
 * (an allocation failed) pops g and returns false. */
bool gc_guard_enter(GcGuard *g, int setjmp_result);
void gc_guard_leave(GcGuard *g);
/* Fail as an allocation of n bytes would: to this thread's innermost guard.
 * For a failure caught in another thread (a particle pool's worker) and
 * handed back to the thread that waits for it. */
_Noreturn void gc_out_of_memory(size_t n);

/* ---- values ------------------------------------------------------------- */

typedef enum {
  V_NONE = 0, /* no value: void returns, unset variables */
  V_INT,      /* int64 */
  V_REAL,     /* double */
  V_BOOL,
  V_STR,      /* immutable string */
  V_ARR,      /* array of Values (any element kind, nested for more dims) */
  V_VEC,      /* column vector of doubles:  t->rows = n, t->cols = 1 */
  V_ROWVEC,   /* row vector of doubles:     t->rows = 1, t->cols = n */
  V_MAT,      /* matrix of doubles, column-major: d[(j)*rows + i], 0-based i,j */
} ValKind;

typedef struct PplStr {
  size_t len;
  char data[]; /* NUL-terminated */
} PplStr;

typedef struct ValArr {
  int n;
  struct Value *e; /* n elements */
} ValArr;

typedef struct ValTen {
  int rows, cols;
  double *d;   /* rows*cols doubles, column-major (atomic allocation) */
  int32_t *ad; /* reserved for reverse-mode AD (issue 3): tape node per element, NULL = constant */
} ValTen;

typedef struct Value {
  uint8_t k;  /* ValKind */
  int32_t ad; /* reserved for reverse-mode AD (issue 3): tape node of a V_REAL, 0 = constant */
  union {
    int64_t i;
    double r;
    bool b;
    PplStr *s;
    ValArr *a;
    ValTen *t;
  };
} Value;

static inline Value val_int(int64_t i) { Value v = {.k = V_INT}; v.i = i; return v; }
static inline Value val_real(double r) { Value v = {.k = V_REAL}; v.r = r; return v; }
static inline Value val_bool(bool b) { Value v = {.k = V_BOOL}; v.b = b; return v; }
static inline Value val_none(void) { Value v = {.k = V_NONE}; return v; }

Value val_str(const char *s);             /* copies */
Value val_strn(const char *s, size_t n);  /* copies n bytes */
Value val_arr(int n);                     /* n V_NONE elements */
Value val_vec(int n);                     /* zero-filled */
Value val_rowvec(int n);
Value val_mat(int rows, int cols);

/* Deep copy of containers (scalars and strings are returned as is). */
Value val_copy(Value v);

/* Number of scalar elements: 1 for scalars, product of sizes for containers. */
size_t val_numel(Value v);
/* Numeric scalar as double (int, real or bool); NaN for anything else. */
double val_as_real(Value v);
/* Flatten every numeric scalar of v (any nesting) into out[0..numel) in
 * row-major index order for arrays and column-major order inside matrices
 * (i.e. the natural "first index slowest" order for arrays, Stan's storage
 * order for matrices). Returns the count written. */
size_t val_flatten(Value v, double *out);
/* Give each numeric scalar of *v its tape node from nodes[*k], nodes[*k + 1],
 * ... in val_flatten order (ints and bools take a slot but keep no node). */
void val_set_nodes(Value *v, const int32_t *nodes, size_t *k);
/* The tape nodes of v's numeric scalars into out[0..numel) in val_flatten
 * order (0 for constants, ints and bools); returns the count. */
size_t val_flatten_nodes(Value v, int32_t *out);
/* Structural equality (same kind, shape and elements; NaN != NaN). */
bool val_equal(Value a, Value b);
/* Print v for print() and messages: 3, 2.5, true, "text" unquoted,
 * [1, 2, 3] for arrays and vectors, [[1, 2], [3, 4]] for matrices (by rows).
 * Reals print with %.6g; integral reals print like "2" only if shown as "2". */
char *val_to_string(Value v);
const char *val_kind_name(ValKind k);

#endif
