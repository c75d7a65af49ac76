/* npe_stub.c — TEMPORARY, branch s6-train only: weak stand-ins for
 * inference/npe.h until s6-npe's npe.c is merged (its strong definitions
 * then win, and this file is to be deleted).  They refuse with a message;
 * nothing here trains or draws. */
#include "npe.h"

__attribute__((weak)) const OptSpec npe_options[] = {OPT_END};

__attribute__((weak)) bool npe_train(const IrProgram *p, DataSource *data, const EngineOpts *o,
                                     const char *save, NpeTrainInfo *info, Diag *d) {
  (void)p, (void)data, (void)o, (void)save, (void)info;
  diag_error(d, DIAG_USAGE, (SrcPos){0}, "train --amortize: whole-program amortization "
             "(npe) is not in this build");
  return false;
}

static void *npe_stub_init(const Interp *in, const EngineOpts *o, int chain, Diag *d) {
  (void)in, (void)o, (void)chain;
  diag_error(d, DIAG_USAGE, (SrcPos){0}, "--load: npe files are not readable by this build");
  return NULL;
}

__attribute__((weak)) const EngineVT npe_draws = {.name = "npe", .init = npe_stub_init};
