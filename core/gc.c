/* gc.c — the allocator behind every runtime object: Boehm GC, or calloc when
 * built with -Dgc=false so that ASan and valgrind see every block. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppl_config.h"
#include "value.h"

#if PPL_USE_GC
#define GC_THREADS
#include <gc/gc.h>
#include <pthread.h>

static void *checked(void *p, size_t n);
/* The collector's own warnings ("Repeated allocation of very large block")
   would go to the host's stderr: the library never writes there. */
static void gc_quiet(char *msg, GC_word arg) { (void)msg; (void)arg; }
static pthread_once_t gc_once = PTHREAD_ONCE_INIT;
static void gc_init_once(void) {
  GC_INIT();
  GC_allow_register_threads();
  GC_set_warn_proc(gc_quiet);
}
void gc_init(void) { pthread_once(&gc_once, gc_init_once); }

void *gc_alloc(size_t n) { return checked(GC_MALLOC(n ? n : 1), n); }
void *gc_alloc_atomic(size_t n) {
  void *p = checked(GC_MALLOC_ATOMIC(n ? n : 1), n);
  memset(p, 0, n ? n : 1);
  return p;
}
/* Worker threads (chains, particles) bracket their work with enter/leave.
 * A thread that was already registered (the main thread, or a host thread seen
 * by gc_ensure_thread) is left as it was. */
static __thread int gc_registered_here;
void gc_thread_enter(void) {
  gc_init();
  if (GC_thread_is_registered()) return;
  struct GC_stack_base sb;
  if (GC_get_stack_base(&sb) == GC_SUCCESS && GC_register_my_thread(&sb) == GC_SUCCESS)
    gc_registered_here = 1;
}
void gc_thread_leave(void) {
  if (gc_registered_here) {
    gc_registered_here = 0;
    GC_unregister_my_thread();
  }
}

static pthread_key_t gc_thread_key;
static pthread_once_t gc_key_once = PTHREAD_ONCE_INIT;
static void gc_thread_exit(void *unused) {
  (void)unused;
  GC_unregister_my_thread();
}
static void gc_key_init(void) { pthread_key_create(&gc_thread_key, gc_thread_exit); }

void gc_ensure_thread(void) {
  gc_init();
  if (GC_thread_is_registered()) return;
  pthread_once(&gc_key_once, gc_key_init);
  struct GC_stack_base sb;
  if (GC_get_stack_base(&sb) == GC_SUCCESS && GC_register_my_thread(&sb) == GC_SUCCESS)
    pthread_setspecific(gc_thread_key, (void *)1);
}

void *gc_alloc_root(size_t n) { return checked(GC_MALLOC_UNCOLLECTABLE(n ? n : 1), n); }
void gc_free_root(void *p) { GC_FREE(p); }

/* While any training loop runs, the heap may grow to about twice its live
   data before a collection (free-space divisor 1) instead of the default
   1.33 times (3): a loop that makes garbage at every step (the interpreter's
   values for each datapoint of a minibatch) collects a third as often.  A
   count, so that overlapping loops (chains in threads) leave the setting
   as the last one found it. */
static pthread_mutex_t gc_tp_mu = PTHREAD_MUTEX_INITIALIZER;
static int gc_tp_count;
static GC_word gc_tp_saved;
void gc_throughput_begin(void) {
  gc_init();
  pthread_mutex_lock(&gc_tp_mu);
  if (gc_tp_count++ == 0) {
    gc_tp_saved = GC_get_free_space_divisor();
    GC_set_free_space_divisor(1);
  }
  pthread_mutex_unlock(&gc_tp_mu);
}
void gc_throughput_end(void) {
  pthread_mutex_lock(&gc_tp_mu);
  if (gc_tp_count > 0 && --gc_tp_count == 0) GC_set_free_space_divisor(gc_tp_saved);
  pthread_mutex_unlock(&gc_tp_mu);
}
#else
void gc_init(void) {}
static void *checked(void *p, size_t n);
void *gc_alloc(size_t n) { return checked(calloc(1, n ? n : 1), n); }
void *gc_alloc_atomic(size_t n) { return checked(calloc(1, n ? n : 1), n); }
void gc_thread_enter(void) {}
void gc_thread_leave(void) {}
void gc_ensure_thread(void) {}
void *gc_alloc_root(size_t n) { return checked(calloc(1, n ? n : 1), n); }
void gc_free_root(void *p) { free(p); }
void gc_throughput_begin(void) {}
void gc_throughput_end(void) {}
#endif

/* The innermost guard of each thread (see value.h). */
static __thread GcGuard *gc_guard_top;

bool gc_guard_enter(GcGuard *g, int setjmp_result) {
  if (setjmp_result) {
    gc_guard_top = g->prev;
    return false;
  }
  g->prev = gc_guard_top;
  g->bytes = 0;
  gc_guard_top = g;
  return true;
}

void gc_guard_leave(GcGuard *g) {
  if (gc_guard_top == g) gc_guard_top = g->prev;
}

void gc_out_of_memory(size_t n) {
  GcGuard *g = gc_guard_top;
  if (g) {
    g->bytes = n;
    longjmp(g->jb, 1);
  }
  fprintf(stderr, "ppl: out of memory allocating %zu bytes\n", n);
  abort();
}

static void *checked(void *p, size_t n) {
  if (!p && n) gc_out_of_memory(n);
  return p;
}

char *gc_strndup(const char *s, size_t n) {
  char *p = gc_alloc_atomic(n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *gc_strdup(const char *s) { return gc_strndup(s, strlen(s)); }

void *gc_grow(void *a, int n, int *cap, size_t elem) {
  if (n < *cap) return a;
  int c = *cap ? 2 * *cap : 8;
  void *m = gc_alloc(elem * (size_t)c);
  if (n) memcpy(m, a, elem * (size_t)n);
  *cap = c;
  return m;
}

char *gc_read_file(const char *path, size_t *len, int *errnum) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    *errnum = errno;
    return NULL;
  }
  size_t cap = 1 << 14, n = 0;
  char *text = gc_alloc_atomic(cap + 1);
  for (;;) {
    if (n == cap) {
      char *bigger = gc_alloc_atomic(cap * 2 + 1);
      memcpy(bigger, text, n);
      text = bigger;
      cap *= 2;
    }
    size_t got = fread(text + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  int e = ferror(f) ? (errno ? errno : EIO) : 0;
  fclose(f);
  if (e) {
    *errnum = e;
    return NULL;
  }
  text[n] = 0;
  *len = n;
  return text;
}

char *gc_printf(const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = gc_alloc_atomic((size_t)n + 1);
  vsnprintf(p, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return p;
}
