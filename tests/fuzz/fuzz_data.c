/* fuzz_data.c — fuzz target for the data loader: any bytes are read as a data
 * file for a model whose data block has ints, reals, arrays, a matrix, a
 * simplex and strings with sizes that depend on earlier data; the loader must
 * accept them or report an error. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../ir/interp.h"
#include "../../lang/check.h"
#include "../../api/data.h"
#include "../../parser/ast.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char model[] =
    "data { int<lower=0> N; int<lower=0> K; real y[N]; vector<lower=0>[K] v;\n"
    "       matrix[N, K] X; simplex[K] p; int z[N, 2]; string s; bool b; }\n"
    "model { real mu ~ normal(0, 1); }\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gc_init();
  Diag d;
  diag_init(&d);
  Ast *ast = parse_string(model, strlen(model), "fuzz.ppl", &d);
  CheckedProgram *cp = ast ? check_program(ast, "fuzz.ppl", 0, NULL, &d) : NULL;
  IrProgram *ir = cp ? ir_lower(cp, &d) : NULL;
  if (!ir) {
    fprintf(stderr, "fuzz_data: the fixed model does not compile: %s\n", d.msg);
    return 0;
  }
  DataSource *src = data_json_string((const char *)data, size, "fuzz.json", &d);
  if (!src) return 0;
  Interp *in = interp_new(ir, stdout);
  (void)interp_load_data(in, src, &d);
  return 0;
}
