/* main.c — the `ppl` command: a host program of libppl like any other, using
 * only ppl.h.  Parses the command line, compiles the model, loads data and
 * runs an engine; every failure is a message naming the place and an exit
 * status from sysexits (64 usage, 65 model or data error, 66 unreadable input,
 * 70 internal error, 73 output file not writable). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ppl.h"

enum { EX_OK = 0, EX_USAGE_ = 64, EX_DATAERR_ = 65, EX_NOINPUT_ = 66, EX_SOFTWARE_ = 70,
       EX_CANTCREAT_ = 73 };

static const char usage_text[] =
    "usage: ppl <command> [options]\n"
    "\n"
    "commands:\n"
    "  run MODEL.ppl [options]   run inference and print a summary\n"
    "  check MODEL.ppl [--data F] [--deps]\n"
    "                            print the structural analysis and the engine choice;\n"
    "                            --deps: the latents' dependency graph as well\n"
    "  ir MODEL.ppl              print the intermediate representation\n"
    "  ir --llvm MODEL.ppl [--data F]\n"
    "                            print the optimised LLVM IR of the compiled log density\n"
    "  exec MODEL.ppl [--data F] [--seed N]\n"
    "                            run the program once forward (latents from the prior)\n"
    "  version                   print the version\n"
    "\n"
    "options of run:\n"
    "  --data FILE.json      data in CmdStan's JSON layout\n"
    "  --engine NAME         nuts, hmc, mh, smc, pgibbs, is, prior (default: chosen by\n"
    "                        analysis of the program, reason printed)\n"
    "  --seed N              random seed (default 1); same seed, same output\n"
    "  --chains N            chains (default 4)\n"
    "  --draws N             draws per chain (default 1000)\n"
    "  --warmup N            warmup iterations per chain (default 1000)\n"
    "  --thin N              keep every N-th draw (default 1)\n"
    "  --threads N           worker threads (default: CPUs): chains first, and particle\n"
    "                        engines give each chain's particles max(1, N / chains)\n"
    "  --output FILE.csv     draws in CmdStan's CSV layout (FILE_1.csv ... for chains > 1)\n"
    "  --summary FILE.json   summary as JSON\n"
    "  --quiet               no summary table on stdout\n"
    "gradient-based engines:\n"
    "  --metric diag|dense|unit   mass matrix adaptation (default diag)\n"
    "  --max-depth N              NUTS tree depth limit (default 10)\n"
    "  --adapt-delta X            target acceptance statistic (default 0.8)\n"
    "  --stepsize X               initial step size before adaptation (default 1)\n"
    "  --stepsize-jitter X        step size times uniform(1-X, 1+X) per transition (default 0)\n"
    "  --int-time X               hmc: integration time (default 2 pi)\n"
    "  --init R                   initial values uniform(-R, R) on the unconstrained scale\n"
    "                             (default 2; 0: all zero)\n"
    "  --no-jit                   interpret the log density instead of compiling it with\n"
    "                             LLVM (the summary's 'backend:' line says which ran)\n"
    "particle engines:\n"
    "  --particles N              particles (default 1000)\n"
    "  --resample SCHEME          systematic (default), multinomial, stratified, residual\n"
    "  --ess-threshold X          resample when ESS/N < X (default 0.5)\n"
    "  --rejuvenate K             MH moves per particle after resampling (default 0)\n"
    "  --ancestor-sampling        pgibbs: resample the reference's ancestor (PGAS)\n";

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "ppl: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(run 'ppl help' for usage)\n");
  return EX_USAGE_;
}

/* Exit status for a library error. */
static int exit_code(ppl_status s) {
  switch (s) {
  case PPL_OK: return EX_OK;
  case PPL_ERR_USAGE: return EX_USAGE_;
  case PPL_ERR_SYNTAX:
  case PPL_ERR_TYPE:
  case PPL_ERR_DATA:
  case PPL_ERR_RUNTIME: return EX_DATAERR_;
  case PPL_ERR_IO: return EX_NOINPUT_;
  default: return EX_SOFTWARE_;
  }
}

/* Print the error with the offending source line and a caret under the column. */
static int report(ppl_context *ctx) {
  const char *file = NULL;
  int line = 0, col = 0;
  ppl_status s = ppl_errpos(ctx, &file, &line, &col);
  /* usage errors carry no place: say who is speaking, as for option errors */
  fprintf(stderr, "%s%s\n", s == PPL_ERR_USAGE ? "ppl: " : "", ppl_errmsg(ctx));
  if (file && line > 0 && col > 0) {
    FILE *f = fopen(file, "r");
    if (f) {
      char buf[4096];
      int ln = 1;
      while (fgets(buf, sizeof buf, f)) {
        if (ln == line) {
          size_t n = strcspn(buf, "\r\n");
          buf[n] = 0;
          if (n < 300) {
            fprintf(stderr, "  %s\n  ", buf);
            for (int i = 1; i < col && (size_t)i <= n; i++) fputc(buf[i - 1] == '\t' ? '\t' : ' ', stderr);
            fprintf(stderr, "^\n");
          }
          break;
        }
        if (strchr(buf, '\n')) ln++;
      }
      fclose(f);
    }
  }
  return exit_code(s);
}

static int parse_int_opt(const char *opt, const char *val, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(val, &end, 10);
  if (errno || end == val || *end || v < lo || v > hi) {
    fprintf(stderr, "ppl: %s expects an integer from %ld to %ld, got '%s'\n", opt, lo, hi, val);
    return 0;
  }
  *out = v;
  return 1;
}

typedef struct Args {
  const char *cmd, *model, *data, *engine, *output, *summary, *metric, *resample;
  long seed, chains, draws, warmup, thin, threads, max_depth, particles, rejuvenate;
  double adapt_delta, ess_threshold;
  double stepsize, stepsize_jitter, int_time, init_radius; /* < 0: not given */
  int quiet, ancestor_sampling, no_jit, llvm, deps;
} Args;

static int parse_real_opt(const char *opt, const char *val, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(val, &end);
  if (errno || end == val || *end || !(v >= lo && v <= hi)) {
    fprintf(stderr, "ppl: %s expects a number from %g to %g, got '%s'\n", opt, lo, hi, val);
    return 0;
  }
  *out = v;
  return 1;
}

/* A finite number > 0 (or >= 0 with zero_ok). */
static int parse_positive_opt(const char *opt, const char *val, int zero_ok, double *out) {
  char *end;
  errno = 0;
  double v = strtod(val, &end);
  if (errno || end == val || *end || !(zero_ok ? v >= 0 : v > 0) || !isfinite(v)) {
    fprintf(stderr, "ppl: %s expects a %s number, got '%s'\n", opt,
            zero_ok ? "non-negative" : "positive", val);
    return 0;
  }
  *out = v;
  return 1;
}

static int parse_args(int argc, char **argv, Args *a) {
  a->seed = 1;
  a->chains = -1;
  a->draws = -1;
  a->warmup = -1;
  a->thin = 1;
  a->threads = 0;
  a->adapt_delta = a->ess_threshold = -1; /* not given */
  a->stepsize = a->stepsize_jitter = a->int_time = a->init_radius = -1;
  for (int i = 2; i < argc; i++) {
    const char *o = argv[i];
    const char *val = NULL;
    if (o[0] == '-' && o[1] == '-') {
      /* --opt=value or --opt value */
      char name[64];
      const char *eq = strchr(o, '=');
      size_t n = eq ? (size_t)(eq - o) : strlen(o);
      if (n >= sizeof name) return usage_error("unknown option '%s'", o);
      memcpy(name, o, n);
      name[n] = 0;
      if (!strcmp(name, "--quiet")) {
        if (eq) return usage_error("--quiet takes no value: '%s'", o);
        a->quiet = 1;
        continue;
      }
      if (!strcmp(name, "--no-jit") || !strcmp(name, "--llvm")) {
        if (eq) return usage_error("%s takes no value", name);
        if (name[2] == 'n') a->no_jit = 1;
        else a->llvm = 1;
        continue;
      }
      if (!strcmp(name, "--deps")) {
        if (eq) return usage_error("--deps takes no value: '%s'", o);
        a->deps = 1;
        continue;
      }
      if (!strcmp(name, "--ancestor-sampling")) {
        if (eq) return usage_error("--ancestor-sampling takes no value: '%s'", o);
        a->ancestor_sampling = 1;
        continue;
      }
      static const char *const valued[] = {"--data", "--engine", "--seed", "--chains", "--draws",
                                           "--warmup", "--thin", "--threads", "--output",
                                           "--summary", "--metric", "--max-depth",
                                           "--adapt-delta", "--particles", "--resample",
                                           "--ess-threshold", "--rejuvenate", "--stepsize",
                                           "--stepsize-jitter", "--int-time", "--init", NULL};
      int known = 0;
      for (int k = 0; valued[k]; k++)
        if (!strcmp(name, valued[k])) known = 1;
      if (!known) return usage_error("unknown option '%s'", name);
      if (eq) val = eq + 1;
      else if (i + 1 < argc) val = argv[++i];
      else return usage_error("option %s needs a value", name);
      if (!*val) return usage_error("option %s needs a non-empty value", name);
      if (!strcmp(name, "--data")) a->data = val;
      else if (!strcmp(name, "--engine")) a->engine = val;
      else if (!strcmp(name, "--output")) a->output = val;
      else if (!strcmp(name, "--summary")) a->summary = val;
      else if (!strcmp(name, "--metric")) a->metric = val;
      else if (!strcmp(name, "--resample")) a->resample = val;
      else if (!strcmp(name, "--max-depth")) {
        if (!parse_int_opt(name, val, 1, 30, &a->max_depth)) return EX_USAGE_;
      } else if (!strcmp(name, "--particles")) {
        if (!parse_int_opt(name, val, 1, 100000000, &a->particles)) return EX_USAGE_;
      } else if (!strcmp(name, "--rejuvenate")) {
        if (!parse_int_opt(name, val, 0, 1000000, &a->rejuvenate)) return EX_USAGE_;
      } else if (!strcmp(name, "--adapt-delta")) {
        if (!parse_real_opt(name, val, 1e-6, 1 - 1e-9, &a->adapt_delta)) return EX_USAGE_;
      } else if (!strcmp(name, "--ess-threshold")) {
        if (!parse_real_opt(name, val, 0, 1, &a->ess_threshold)) return EX_USAGE_;
      } else if (!strcmp(name, "--stepsize")) {
        if (!parse_positive_opt(name, val, 0, &a->stepsize)) return EX_USAGE_;
      } else if (!strcmp(name, "--stepsize-jitter")) {
        if (!parse_real_opt(name, val, 0, 1, &a->stepsize_jitter)) return EX_USAGE_;
      } else if (!strcmp(name, "--int-time")) {
        if (!parse_positive_opt(name, val, 0, &a->int_time)) return EX_USAGE_;
      } else if (!strcmp(name, "--init")) {
        if (!parse_positive_opt(name, val, 1, &a->init_radius)) return EX_USAGE_;
      }
      else if (!strcmp(name, "--seed")) {
        if (!parse_int_opt(name, val, 0, LONG_MAX, &a->seed)) return EX_USAGE_;
      } else if (!strcmp(name, "--chains")) {
        if (!parse_int_opt(name, val, 1, 1024, &a->chains)) return EX_USAGE_;
      } else if (!strcmp(name, "--draws")) {
        if (!parse_int_opt(name, val, 1, 100000000, &a->draws)) return EX_USAGE_;
      } else if (!strcmp(name, "--warmup")) {
        if (!parse_int_opt(name, val, 0, 100000000, &a->warmup)) return EX_USAGE_;
      } else if (!strcmp(name, "--thin")) {
        if (!parse_int_opt(name, val, 1, 1000000, &a->thin)) return EX_USAGE_;
      } else if (!strcmp(name, "--threads")) {
        if (!parse_int_opt(name, val, 1, 1024, &a->threads)) return EX_USAGE_;
      }
    } else if (o[0] == '-' && o[1]) {
      return usage_error("unknown option '%s'", o);
    } else if (!a->model) {
      a->model = o;
    } else {
      return usage_error("unexpected argument '%s' (one model file per run)", o);
    }
  }
  return EX_OK;
}

static int cmd_model(ppl_context *ctx, const Args *a, ppl_model **m) {
  if (!a->model) return usage_error("%s needs a model file", a->cmd);
  if (ppl_compile_file(ctx, a->model, m) != PPL_OK) return report(ctx);
  if (a->data) {
    if (ppl_set_data_file(*m, a->data) != PPL_OK) return report(ctx);
  } else if (ppl_data_commit(*m) != PPL_OK) {
    /* no --data: fine when the program declares no data */
    return report(ctx);
  }
  return EX_OK;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) {
    fputs(usage_text, stderr);
    return EX_USAGE_;
  }
  Args a = {0};
  a.cmd = argv[1];
  if (!strcmp(a.cmd, "help") || !strcmp(a.cmd, "--help") || !strcmp(a.cmd, "-h")) {
    fputs(usage_text, stdout);
    return EX_OK;
  }
  if (!strcmp(a.cmd, "version") || !strcmp(a.cmd, "--version")) {
    printf("ppl %s\n", ppl_version_string());
    return EX_OK;
  }
  if (strcmp(a.cmd, "run") && strcmp(a.cmd, "check") && strcmp(a.cmd, "ir") && strcmp(a.cmd, "exec"))
    return usage_error("unknown command '%s'", a.cmd);
  int rc = parse_args(argc, argv, &a);
  if (rc != EX_OK) return rc;

  ppl_config cfg;
  ppl_config_default(&cfg);
  cfg.threads = (int)a.threads;
  ppl_context *ctx = ppl_context_new(&cfg);
  if (!ctx) {
    fprintf(stderr, "ppl: out of memory\n");
    return EX_SOFTWARE_;
  }
  ppl_model *m = NULL;
  ppl_result *r = NULL;

  if (!strcmp(a.cmd, "ir") && a.llvm) { /* the compiled log density: needs the data */
    if ((rc = cmd_model(ctx, &a, &m)) != EX_OK) goto done;
    const char *text = ppl_model_llvm_ir(m);
    if (!text) rc = report(ctx);
    else fputs(text, stdout);
    goto done;
  }
  if (!strcmp(a.cmd, "ir")) {
    if (!a.model) rc = usage_error("%s needs a model file", a.cmd);
    else if (ppl_compile_file(ctx, a.model, &m) != PPL_OK) rc = report(ctx);
    else fputs(ppl_model_ir(m), stdout);
    goto done;
  }
  if ((rc = cmd_model(ctx, &a, &m)) != EX_OK) goto done;

  if (!strcmp(a.cmd, "check")) {
    const char *text = ppl_model_analysis(m);
    if (!text) rc = report(ctx);
    else fputs(text, stdout);
    if (text && a.deps) fputs(ppl_model_dependencies(m), stdout);
    goto done;
  }

  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.seed = (uint64_t)a.seed;
  if (!strcmp(a.cmd, "exec")) {
    ro.engine = "prior";
    ro.chains = 1;
    ro.draws = 1;
    ro.warmup = 0;
  } else {
    ro.engine = a.engine;
    if (a.chains > 0) ro.chains = (int)a.chains;
    if (a.draws > 0) ro.draws = (int)a.draws;
    if (a.warmup >= 0) ro.warmup = (int)a.warmup;
    ro.thin = (int)a.thin;
    ro.output_csv = a.output;
    ro.summary_json = a.summary;
    if (a.metric) ro.metric = a.metric;
    if (a.resample) ro.resample = a.resample;
    if (a.max_depth) ro.max_depth = (int)a.max_depth;
    if (a.particles) ro.particles = (int)a.particles;
    if (a.rejuvenate) ro.rejuvenate = (int)a.rejuvenate;
    ro.ancestor_sampling = a.ancestor_sampling;
    ro.no_jit = a.no_jit;
    if (a.adapt_delta > 0) ro.adapt_delta = a.adapt_delta;
    if (a.ess_threshold >= 0) ro.ess_threshold = a.ess_threshold;
    if (a.stepsize > 0) ro.stepsize = a.stepsize;
    if (a.stepsize_jitter >= 0) ro.stepsize_jitter = a.stepsize_jitter;
    if (a.int_time > 0) ro.int_time = a.int_time;
    if (a.init_radius >= 0) ro.init_radius = a.init_radius;
  }
  ro.progress = !strcmp(a.cmd, "run") && isatty(2);
  if (strcmp(a.cmd, "exec")) {
    const char *name, *why;
    if (ppl_model_engine(m, ro.engine, &name, &why) != PPL_OK) {
      rc = report(ctx);
      goto done;
    }
    fprintf(stderr, "engine: %s\n", why);
  }
  if (ppl_run(m, &ro, &r) != PPL_OK) {
    rc = report(ctx);
    goto done;
  }
  if (!strcmp(a.cmd, "run") && !a.quiet) {
    const char *table = ppl_result_summary_text(r);
    fputs(table, stdout);
    if (*table && table[strlen(table) - 1] != '\n') fputc('\n', stdout);
  }

done:
  ppl_result_free(r);
  ppl_model_free(m);
  ppl_context_free(ctx);
  return rc;
}
