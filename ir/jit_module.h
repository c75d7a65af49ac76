/* jit_module.h — the JIT's LLVM half as a module loaded on first compile.
 *
 * Loading libLLVM costs a process tens of milliseconds (most of a command
 * that compiles nothing), so the library does not link it.  The code that
 * drives LLVM (ir/jit.c, ir/jit_native.c) is built into its own shared module,
 * libppl_jit.so, which ir/jit_host.c dlopens the first time something is
 * compiled (jit_compile, jit_kernel_compile, jit_rule_compile).  Runs that
 * compile nothing (--no-jit, `ppl check`, `ppl ir` without --llvm, amortized
 * draws, hosts that never ask for the JIT) never load it, nor libLLVM.
 *
 * The module exports one symbol, PPL_JIT_MODULE_SYMBOL, a JitModule: its
 * entry points.  Everything else it calls (the interpreter, the runtime of
 * ir/jit_rt.c, the collector) resolves to the host's copy when the host
 * exports it (libppl.so always does; executables linked with ppl's static
 * libraries export theirs), so there is one of each in the process.
 */
#ifndef PPL_JIT_MODULE_H
#define PPL_JIT_MODULE_H

#include "jit_gen.h"

#define PPL_JIT_MODULE_SYMBOL "ppl_jit_module"
/* The version a module must carry: ppl's, and the number of this table's
   layout, raised whenever an entry's signature changes (2: compile took
   `quick`), so that a module of an older build of the same version is
   refused rather than called with the wrong arguments. */
#define PPL_JIT_MODULE_VERSION PPL_VERSION_STRING "+jitabi2"
#define PPL_JIT_MODULE_FILE "libppl_jit.so"

typedef struct JitModule {
  /* the build it belongs to: a module of another build is refused */
  const char *version;
  size_t size_jit, size_ctx, size_site;
  Jit *(*compile)(const Interp *in, const JitLatents *lat, size_t dim, bool keep_ir,
                  bool quick, const char **why);
  JitFn (*compile_draw)(Jit *j); /* NULL with j->draw_why set */
  void (*free)(Jit *j);
  JitData *(*data_bind)(const Jit *j, const Value *data, const char **why);
  JitKernel *(*kernel_compile)(const DistFamily *f, int width, const char **why);
  JitKernel *(*rule_compile)(const ScalarRule *r, const char **why);
  void *(*kernel_fn)(const JitKernel *k);
  void (*kernel_free)(JitKernel *k);
} JitModule;

/* The sizes the loader and the module must agree on. */
#define JIT_MODULE_SIZES sizeof(struct Jit), sizeof(struct JitCtx), sizeof(JitSite)

/* The module, loaded on the first call (once per process); NULL with *why
 * ("cannot load the JIT module: ...") when it is missing or of another
 * build, or when ppl was built without LLVM. */
const JitModule *jit_module(const char **why);

#endif
