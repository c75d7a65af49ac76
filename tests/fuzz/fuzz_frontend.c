/* fuzz_frontend.c — fuzz target for the front end: any bytes go through the
 * parser, the checker, the lowering and the analysis, which must either accept
 * them or report an error — never crash, hang or read out of bounds.
 * Works with libFuzzer (clang -fsanitize=fuzzer) and with mutate.c's driver. */
#include <stddef.h>
#include <stdint.h>

#include "../../ir/ir.h"
#include "../../lang/check.h"
#include "../../parser/ast.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gc_init();
  Diag d;
  diag_init(&d);
  Ast *ast = parse_string((const char *)data, size, "fuzz.ppl", &d);
  if (!ast) return 0;
  CheckedProgram *cp = check_program(ast, "fuzz.ppl", 0, NULL, &d);
  if (!cp) return 0;
  IrProgram *ir = ir_lower(cp, &d);
  if (!ir) return 0;
  (void)ir_print(ir);
  (void)ir_analyze(ir);
  return 0;
}
