/* test_options.c — the engines' option tables and the store engines read them
 * from (inference/options.c, the registry in engine.c), and the traits that
 * decide which engines can run a program (engine_fits).
 *
 *   - every type parses good text and refuses bad text with the exact message
 *     the CLI prints (integers, reals with a range, positive reals, flags,
 *     choices), including overflow and trailing garbage;
 *   - the registry is consistent: every default parses and lies in its range,
 *     one name has one table entry (shared tables, not copies), no engine
 *     lists a name twice, and every engine's tables end;
 *   - unknown names get the closest known one as a suggestion, unless nothing
 *     is close;
 *   - getters give the default until a value is set, then the value; common
 *     options set the EngineOpts fields;
 *   - engine_fits: gradient engines refuse discrete latents, dynamic
 *     structure and programs without latents, with the reason. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "inference/engine.h"
#include "inference/nuts.h"
#include "inference/options.h"
#include "inference/trace.h"
#include "test_engines_util.h"

static void expect_bad(const char *name, const char *text, const char *want) {
  const OptSpec *s = engine_option_find(name);
  char err[256] = "";
  OptValue v;
  bool ok = s && opt_parse(s, text, &v, err, sizeof err);
  tap_ok(s && !ok && !strcmp(err, want), "--%s '%s' refused: %s", name, text, err);
}

static void test_parse(void) {
  const OptSpec *s = engine_option_find("particles");
  char err[256];
  OptValue v;
  tap_ok(s && s->type == OPT_INT && opt_parse(s, "250", &v, err, sizeof err) && v.i == 250,
         "int: '250' is 250");
  expect_bad("particles", "abc", "--particles expects an integer from 0 to 100000000, got 'abc'");
  expect_bad("particles", "-3", "--particles expects an integer from 0 to 100000000, got '-3'");
  expect_bad("particles", "12x", "--particles expects an integer from 0 to 100000000, got '12x'");
  expect_bad("particles", "", "--particles expects an integer from 0 to 100000000, got ''");
  expect_bad("seed", "99999999999999999999",
             "--seed expects an integer from 0 to 9223372036854775807, got '99999999999999999999'");
  s = engine_option_find("adapt-delta");
  tap_ok(s && opt_parse(s, "0.95", &v, err, sizeof err) && v.r == 0.95, "real: '0.95' is 0.95");
  expect_bad("adapt-delta", "1", "--adapt-delta expects a number from 1e-06 to 1, got '1'");
  expect_bad("adapt-delta", "nan", "--adapt-delta expects a number from 1e-06 to 1, got 'nan'");
  expect_bad("stepsize", "0", "--stepsize expects a positive number, got '0'");
  expect_bad("stepsize", "inf", "--stepsize expects a positive number, got 'inf'");
  expect_bad("init", "-0.5", "--init expects a non-negative number, got '-0.5'");
  s = engine_option_find("init");
  tap_ok(s && opt_parse(s, "0", &v, err, sizeof err) && v.r == 0, "non-negative real: '0' allowed");
  s = engine_option_find("ancestor-sampling");
  tap_ok(s && s->type == OPT_BOOL && opt_parse(s, "true", &v, err, sizeof err) && v.i == 1 &&
             opt_parse(s, "off", &v, err, sizeof err) && v.i == 0,
         "bool: 'true' and 'off'");
  expect_bad("ancestor-sampling", "maybe", "--ancestor-sampling expects true or false, got 'maybe'");
  s = engine_option_find("resample");
  tap_ok(s && opt_parse(s, "residual", &v, err, sizeof err) && v.i == RESAMPLE_RESIDUAL,
         "enum: 'residual' is RESAMPLE_RESIDUAL");
  s = engine_option_find("metric");
  tap_ok(s && opt_parse(s, "unit", &v, err, sizeof err) && v.i == METRIC_UNIT,
         "enum: 'unit' is METRIC_UNIT");
  expect_bad("metric", "Dense", "--metric expects one of diag, dense, unit, got 'Dense'");
  /* numbers given by the API's typed fields: the same words */
  s = engine_option_find("chains");
  tap_ok(s && !opt_check_int(s, 2000, err, sizeof err) &&
             !strcmp(err, "--chains expects an integer from 1 to 1024, got '2000'"),
         "typed int out of range: %s", err);
  s = engine_option_find("stepsize-jitter");
  tap_ok(s && !opt_check_real(s, 1.5, err, sizeof err) &&
             !strcmp(err, "--stepsize-jitter expects a number from 0 to 1, got '1.5'"),
         "typed real out of range: %s", err);
}

static void test_registry(void) {
  const EngineVT *const *all = engine_all();
  int bad_default = 0, dup_entry = 0, dup_in_engine = 0, total = 0;
  for (int i = -1; i < 0 || all[i]; i++) {
    const EngineVT *e = i < 0 ? NULL : all[i];
    const OptSpec *buf[64];
    int n = engine_options(e, buf, 64);
    if (n > 64) {
      tap_ok(0, "%s: more than 64 options", e ? e->name : "common");
      continue;
    }
    total += n;
    for (int k = 0; k < n; k++) {
      char err[256];
      OptValue v;
      if (!buf[k]->help || !buf[k]->def || !opt_parse(buf[k], buf[k]->def, &v, err, sizeof err)) {
        bad_default++;
        tap_diag("%s: default of --%s: %s", e ? e->name : "common", buf[k]->name, err);
      }
      /* one name, one entry: engines share a table rather than copy entries */
      if (engine_option_find(buf[k]->name) != buf[k]) {
        dup_entry++;
        tap_diag("--%s has two table entries", buf[k]->name);
      }
      for (int j = 0; j < k; j++) dup_in_engine += !strcmp(buf[j]->name, buf[k]->name);
    }
  }
  tap_ok(bad_default == 0, "every default parses and lies in its range (%d options)", total);
  tap_ok(dup_entry == 0, "each option name has one table entry");
  tap_ok(dup_in_engine == 0, "no engine lists an option twice");
  tap_ok(!strcmp(engine_option_users("particles"), "smc, pgibbs, steer") &&
             !strcmp(engine_option_users("metric"), "nuts, hmc") &&
             !strcmp(engine_option_users("max-depth"), "nuts, hmc") &&
             !strcmp(engine_option_users("int-time"), "hmc") &&
             !strcmp(engine_option_users("chains"), ""),
         "who has which option: particles %s; metric %s", engine_option_users("particles"),
         engine_option_users("metric"));
  tap_ok(engine_option_applies(&engine_mh, "seed") && !engine_option_applies(&engine_mh, "particles") &&
             engine_option_applies(&engine_pgibbs, "ancestor-sampling") &&
             !engine_option_applies(&engine_smc, "ancestor-sampling"),
         "applicability: common options everywhere, an engine's only there");
}

static void test_suggest(void) {
  tap_ok(!strcmp(engine_option_unknown("particle"), "unknown option '--particle' (did you mean '--particles'?)"),
         "a missing letter: %s", engine_option_unknown("particle"));
  tap_ok(!strcmp(engine_option_unknown("adpat-delta"),
                 "unknown option '--adpat-delta' (did you mean '--adapt-delta'?)"),
         "a transposition: %s", engine_option_unknown("adpat-delta"));
  tap_ok(!strcmp(engine_option_unknown("sampler"), "unknown option '--sampler'"),
         "nothing close: no suggestion");
  tap_ok(engine_option_suggest("xy") == NULL, "two letters are not a typo of anything");
  tap_ok(opt_distance("kitten", "sitting") == 3 && opt_distance("ab", "ba") == 1 &&
             opt_distance("", "abc") == 3,
         "edit distance: kitten/sitting 3, ab/ba 1");
}

static void test_store(void) {
  EngineOpts o;
  engine_opts_default(&o);
  tap_ok(o.chains == 4 && o.draws == 1000 && o.warmup == 1000 && o.thin == 1 && o.seed == 1 &&
             o.init_radius == 2 && !o.no_jit && o.set == NULL,
         "defaults of the common table in the fields, nothing else set");
  tap_ok(engine_opt_int(&o, "particles") == 0 && engine_opt_real(&o, "adapt-delta") == 0.8 &&
             engine_opt_enum(&o, "resample") == RESAMPLE_SYSTEMATIC &&
             !engine_opt_bool(&o, "ancestor-sampling") &&
             fabs(engine_opt_real(&o, "int-time") - 2 * M_PI) < 1e-15,
         "getters give the tables' defaults");
  Diag d;
  diag_init(&d);
  bool ok = engine_opts_set(&o, "particles", "64", &d) && engine_opts_set(&o, "metric", "dense", &d) &&
            engine_opts_set(&o, "chains", "3", &d) && engine_opts_set(&o, "no-jit", "true", &d) &&
            engine_opts_set(&o, "particles", "65", &d);
  tap_ok(ok && engine_opt_int(&o, "particles") == 65 && engine_opt_enum(&o, "metric") == METRIC_DENSE &&
             o.chains == 3 && o.no_jit && o.set && o.set->n == 2,
         "set values: engine options in the set (replaced, not added), common ones in the fields");
  EngineOpts copy = o;
  tap_ok(engine_opt_int(&copy, "particles") == 65, "a copy reads the same values");
  diag_init(&d);
  tap_ok(!engine_opts_set(&o, "particels", "5", &d) && d.code == DIAG_USAGE &&
             !strcmp(d.msg, "unknown option '--particels' (did you mean '--particles'?)"),
         "unknown name: %s", d.msg);
  diag_init(&d);
  tap_ok(!engine_opts_set(&o, "warmup", "-1", &d) && o.warmup == 1000 &&
             !strcmp(d.msg, "--warmup expects an integer from 0 to 100000000, got '-1'"),
         "a bad value changes nothing: %s", d.msg);
}

static const IrAnalysis *analyse(const char *src) {
  Diag d;
  Interp *in = tcompile(src, NULL, &d);
  return in ? ir_analyze(interp_program(in)) : NULL;
}

static void test_fits(void) {
  const IrAnalysis *cont = analyse("model { real a ~ normal(0, 1); real b ~ normal(a, 1); }");
  const IrAnalysis *disc = analyse("model { int k ~ bernoulli(0.5); real a ~ normal(k, 1); }");
  const IrAnalysis *dyn = analyse(
      "model { int n ~ poisson(2); for (i in 1:n + 1) { real x ~ normal(0, 1); } }");
  const IrAnalysis *none = analyse("generated { real y = normal_rng(0, 1); }");
  const IrAnalysis *dyncont = analyse(
      "model { real u ~ uniform(0, 1); if (u > 0.5) { real v ~ normal(0, 1); } }");
  if (!tap_ok(cont && disc && dyn && none && dyncont, "the five programs compile")) return;
  const char *why = NULL;
  tap_ok(engine_fits(&engine_nuts, cont, &why) && why == NULL && engine_fits(&engine_hmc, cont, NULL) &&
             engine_fits(&engine_mh, cont, NULL),
         "continuous, fixed: nuts, hmc and mh fit");
  tap_ok(!engine_fits(&engine_nuts, disc, &why) && why && !strcmp(why, "it needs every latent continuous, and 'k' (test.ppl:1:13) is discrete; use "
                                                                      "--engine mh, smc or pgibbs, which draw discrete latents"),
         "discrete latent: nuts does not fit (%s)", why ? why : "");
  tap_ok(engine_fits(&engine_mh, disc, NULL) && engine_fits(&engine_smc, disc, NULL) &&
             engine_fits(&engine_pgibbs, disc, NULL) && engine_fits(&engine_is, disc, NULL),
         "discrete latent: mh, smc, pgibbs, is fit");
  tap_ok(!engine_fits(&engine_hmc, dyn, &why) && why && strstr(why, "every latent continuous"),
         "dynamic with a discrete latent: hmc does not fit (%s)", why ? why : "");
  tap_ok(dyncont->all_continuous && !dyncont->fixed_structure && !engine_fits(&engine_nuts, dyncont, &why) &&
             why && !strncmp(why, "it needs a fixed structure (", 28) && engine_fits(&engine_mh, dyncont, NULL) &&
             engine_fits(&engine_smc, dyncont, NULL),
         "continuous but dynamic: nuts does not fit (%s); mh and smc do", why ? why : "");
  tap_ok(!engine_fits(&engine_nuts, none, &why) && why && strstr(why, "needs a latent variable") &&
             engine_fits(&engine_prior, none, NULL),
         "no latents: nuts does not fit (%s); prior does", why ? why : "");
  const char *reason = NULL;
  tap_ok(engine_select(disc, &reason) == &engine_mh && engine_select(cont, NULL) == &engine_nuts &&
             engine_select(none, NULL) == &engine_prior,
         "the selector: mh for discrete, nuts for continuous, prior without latents (%s)", reason ? reason : "");
}

int main(void) {
  gc_init();
  test_parse();
  test_registry();
  test_suggest();
  test_store();
  test_fits();
  return tap_done();
}
